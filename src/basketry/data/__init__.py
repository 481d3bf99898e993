"""basketry.data"""
