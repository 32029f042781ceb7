"""psirel.models"""
