"""basketry.training"""
