"""psirel.infer"""
