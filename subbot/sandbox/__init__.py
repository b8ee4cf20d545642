"""subbot.sandbox"""
