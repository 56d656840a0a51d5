// Size baseline: a program that does nearly nothing.
console.log("hello")
