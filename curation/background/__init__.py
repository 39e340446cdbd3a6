"""Clean background from the middle frame: foreground mask + inpainting (paper 3.1)."""
