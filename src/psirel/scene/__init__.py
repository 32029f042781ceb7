"""psirel.scene"""
