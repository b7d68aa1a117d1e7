"""Grad-CAM and friends, feature maps, filters; works on any nn.Module (imports core only)."""
