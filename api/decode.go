package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// decodeData decodes the request's data object into v and turns any
// decoding failure into ErrInvalidData with words naming the field.
func decodeData(req *Request, v any) error {
	err := json.Unmarshal(req.Data, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			field = "data"
		}
		return fmt.Errorf("%w: %s must be %s, not %s", ErrInvalidData, field, kindName(typeErr.Type), typeErr.Value)
	}
	if errors.Is(err, ErrInvalidData) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrInvalidData, err)
}

func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// version is a non-negative JSON integer (expected_version).
func checkVersion(v *int64) error {
	if v != nil && *v < 0 {
		return fmt.Errorf("%w: expected_version must be an integer >= 0", ErrInvalidData)
	}
	return nil
}
