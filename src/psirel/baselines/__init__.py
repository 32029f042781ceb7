"""psirel.baselines"""
