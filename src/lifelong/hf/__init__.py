"""lifelong.hf"""
