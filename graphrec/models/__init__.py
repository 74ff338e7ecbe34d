"""Model papers built on the shared core: Grassmann-flow sequence layers, sparse subspace variational
inference, subspace-pruned mixtures of experts, task-vector merging masks, sparse-dictionary layer
compression and Koopman representations."""
