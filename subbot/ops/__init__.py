"""subbot.ops"""
