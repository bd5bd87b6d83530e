"""lifelong.assessment"""
