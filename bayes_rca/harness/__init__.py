"""The experiments harness: configs -> sweeps -> MLflow runs, methods compared side by side."""
