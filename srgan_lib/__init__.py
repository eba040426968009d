"""srgan_lib"""
