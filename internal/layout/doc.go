// Package layout holds tests of the module's shape rather than of its
// behaviour: the rules of the import graph that the README's "Where the
// code lives" section states. It has no code of its own.
package layout
