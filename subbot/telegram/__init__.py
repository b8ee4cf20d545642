"""subbot.telegram"""
