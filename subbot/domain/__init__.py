"""subbot.domain"""
