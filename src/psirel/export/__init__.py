"""psirel.export"""
