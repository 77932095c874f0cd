"""What MLflow ships: a bundle folder any family saves into, and the pyfunc that serves it."""
