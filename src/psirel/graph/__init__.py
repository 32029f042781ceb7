"""psirel.graph"""
