"""subbot.bot"""
