"""Package data of the scanner: lexicons, stopwords, training data and the trained model."""
