"""psirel.io"""
