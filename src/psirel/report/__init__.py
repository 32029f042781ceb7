"""psirel.report"""
