"""subbot.web"""
