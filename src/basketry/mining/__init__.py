"""basketry.mining"""
