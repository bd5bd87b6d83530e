"""lifelong.engine"""
