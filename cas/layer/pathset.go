//go:build linux

package layer

import "hash/maphash"

// pathSet is the paths one layer wrote or walked through, as an Applier tracks them: a path is
// made (the layer wrote it) or only visited. A layer can hold millions of entries, so a path is
// kept as a 128-bit keyed hash (two maphash sums with random seeds), about 30 bytes an entry
// instead of the path itself: two paths of one layer share a key with odds of about n²/2¹²⁹,
// and the seeds are new in every process, so no layer can be built to collide.
type pathSet struct {
	seeds [2]maphash.Seed
	m     map[[2]uint64]bool
}

func newPathSet() *pathSet {
	return &pathSet{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, m: map[[2]uint64]bool{}}
}

func (s *pathSet) key(rel string) [2]uint64 {
	return [2]uint64{maphash.String(s.seeds[0], rel), maphash.String(s.seeds[1], rel)}
}

// make records that the layer wrote rel.
func (s *pathSet) make(rel string) { s.m[s.key(rel)] = true }

// visit records that the layer walked through the lower directory rel, unless it wrote it.
func (s *pathSet) visit(rel string) {
	k := s.key(rel)
	if _, ok := s.m[k]; !ok {
		s.m[k] = false
	}
}

// get reports whether rel is in the set, and whether the layer wrote it.
func (s *pathSet) get(rel string) (made, ok bool) {
	made, ok = s.m[s.key(rel)]
	return made, ok
}
