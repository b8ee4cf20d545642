"""subbot.payments"""
