"""psirel.train"""
