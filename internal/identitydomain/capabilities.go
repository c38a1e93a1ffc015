package identitydomain

import (
	"context"
	"fmt"

	"github.com/oracle/oci-go-sdk/v65/identitydomains"
)

// GetCapabilities reads the user's capability flags (canUseApiKeys,
// canUseAuthTokens, ...) and allowSelfChange from the user's capabilities
// and selfChange extensions, in the shape SetCapabilities takes. Id, Ocid and
// Meta are the user's (Meta.Version is the ETag to pass as ifMatch).
func (c *Client) GetCapabilities(ctx context.Context, userID string) (identitydomains.UserCapabilitiesChanger, error) {
	u, err := c.GetUser(ctx, userID, SchemaCapabilities, SchemaSelfChange, "meta", "ocid")
	if err != nil {
		return identitydomains.UserCapabilitiesChanger{}, fmt.Errorf("get capabilities: %w", err)
	}
	caps := identitydomains.UserCapabilitiesChanger{
		Schemas: []string{SchemaUserCapabilitiesChanger},
		Id:      u.Id,
		Ocid:    u.Ocid,
		Meta:    u.Meta,
		UrnIetfParamsScimSchemasOracleIdcsExtensionSelfChangeUser: u.UrnIetfParamsScimSchemasOracleIdcsExtensionSelfChangeUser,
	}
	if x := u.UrnIetfParamsScimSchemasOracleIdcsExtensionCapabilitiesUser; x != nil {
		caps.CanUseApiKeys = x.CanUseApiKeys
		caps.CanUseAuthTokens = x.CanUseAuthTokens
		caps.CanUseConsolePassword = x.CanUseConsolePassword
		caps.CanUseCustomerSecretKeys = x.CanUseCustomerSecretKeys
		caps.CanUseOAuth2ClientCredentials = x.CanUseOAuth2ClientCredentials
		caps.CanUseSmtpCredentials = x.CanUseSmtpCredentials
		caps.CanUseDbCredentials = x.CanUseDbCredentials
		caps.CanUseConsole = x.CanUseConsole
	}
	return caps, nil
}

// SetCapabilities sets the user's capability flags with
// PUT /admin/v1/UserCapabilitiesChanger/{userID}. Only the flags and
// allowSelfChange of caps are sent; a nil flag keeps its current value.
// ifMatch is as for PatchUser. It returns the flags as the domain now has them.
func (c *Client) SetCapabilities(ctx context.Context, userID string, caps identitydomains.UserCapabilitiesChanger, ifMatch string) (identitydomains.UserCapabilitiesChanger, Receipt, error) {
	im := c.ifMatch(ctx, ifMatch)
	body := identitydomains.UserCapabilitiesChanger{
		Schemas:                       []string{SchemaUserCapabilitiesChanger},
		CanUseApiKeys:                 caps.CanUseApiKeys,
		CanUseAuthTokens:              caps.CanUseAuthTokens,
		CanUseConsolePassword:         caps.CanUseConsolePassword,
		CanUseCustomerSecretKeys:      caps.CanUseCustomerSecretKeys,
		CanUseOAuth2ClientCredentials: caps.CanUseOAuth2ClientCredentials,
		CanUseSmtpCredentials:         caps.CanUseSmtpCredentials,
		CanUseDbCredentials:           caps.CanUseDbCredentials,
		CanUseConsole:                 caps.CanUseConsole,
		UrnIetfParamsScimSchemasOracleIdcsExtensionSelfChangeUser: caps.UrnIetfParamsScimSchemasOracleIdcsExtensionSelfChangeUser,
	}
	resp, ci, err := callFor(ctx, c, "PutUserCapabilitiesChanger", true, func(ctx context.Context) (identitydomains.PutUserCapabilitiesChangerResponse, error) {
		return c.sdk.PutUserCapabilitiesChanger(ctx, identitydomains.PutUserCapabilitiesChangerRequest{
			UserCapabilitiesChangerId: &userID, UserCapabilitiesChanger: body, IfMatch: im,
		})
	})
	if err != nil {
		return identitydomains.UserCapabilitiesChanger{}, Receipt{}, fmt.Errorf("set capabilities of user %s in %s: %w", userID, c.domain, err)
	}
	return resp.UserCapabilitiesChanger, receipt(OutcomeUpdated, ci, resp.Etag), nil
}
