"""The ray runtime: each camera's inference and retraining jobs as Ray actors at planned accelerator shares."""
