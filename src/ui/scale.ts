// Where the studio switches to views that stay readable with many classes: above this many classes,
// the confusion matrix becomes a list of the most confused pairs (the full matrix is a CSV download)
// and Try it lists the classes by probability instead of in class order.

export const MANY_CLASSES = 20;
