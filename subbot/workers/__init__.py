"""subbot.workers"""
