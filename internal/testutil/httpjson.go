package testutil

import (
	"encoding/json"
	"net/http"
)

// DoJSON sends req with the default client and, when v is not nil, decodes
// the response's JSON body into v. It returns the response's status code (0
// when no response came) and the error of the request or of the decoding.
func DoJSON(req *http.Request, v any) (int, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v == nil {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}
