"""The project model: the book's chapters, profiles and the parameters a chapter declares and checks."""
