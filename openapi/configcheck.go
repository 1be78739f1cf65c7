package openapi

import "github.com/tollgate/tollgate/config"

func init() {
	config.RegisterMockExamples(checkMock)
}

// checkMock checks, when a configuration is loaded, that a mock answered
// from a document's example can be: the document loads, has the operation,
// and the operation a response for the status. A URL is only fetched when
// the configuration is applied.
func checkMock(m config.Mock) []config.FieldError {
	if IsURL(m.OpenAPI) {
		return nil
	}
	s, err := Load(m.OpenAPI)
	if err != nil {
		return []config.FieldError{{Path: "openapi", Msg: err.Error()}}
	}
	op, err := s.Operation(m.Operation)
	if err != nil {
		return []config.FieldError{{Path: "operation", Msg: err.Error()}}
	}
	if _, _, _, err := op.MockResponse(m.Status); err != nil {
		field := "operation"
		if op.response(m.Status) == nil {
			field = "status"
		}
		return []config.FieldError{{Path: field, Msg: err.Error()}}
	}
	return nil
}
