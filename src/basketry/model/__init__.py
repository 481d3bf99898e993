"""basketry.model"""
