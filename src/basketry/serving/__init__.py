"""basketry.serving"""
