"""psirel.features"""
