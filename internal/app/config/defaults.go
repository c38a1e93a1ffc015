package config

import "reflect"

// fillZero sets every zero field of *dst to def's value, descending into
// nested structs, so a list entry decoded from YAML (which starts from zero
// values, not from the defaults) ends up with the defaults where it is silent.
func fillZero[T any](dst *T, def T) {
	fillValue(reflect.ValueOf(dst).Elem(), reflect.ValueOf(def))
}

func fillValue(dst, def reflect.Value) {
	if dst.Kind() == reflect.Struct && dst.Type() != durationType {
		for i := 0; i < dst.NumField(); i++ {
			if dst.Type().Field(i).IsExported() {
				fillValue(dst.Field(i), def.Field(i))
			}
		}
		return
	}
	if dst.IsZero() && !def.IsZero() {
		dst.Set(def)
	}
}
