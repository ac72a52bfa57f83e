"""Dataset inspection behind `detcli dataset`: statistics, annotation lint, drawn samples."""
