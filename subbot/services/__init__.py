"""subbot.services"""
