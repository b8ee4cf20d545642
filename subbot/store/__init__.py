"""subbot.store"""
