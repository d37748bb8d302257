package community

import icrypto "github.com/iotad/iotad/crypto"

// SharedWith is X448(community key, pub): the static half of a version-2
// login (PROTOCOL §3) and the input of the member key. The private key
// never leaves the package; callers cache the result per member.
func (c *Community) SharedWith(pub icrypto.PublicKey) ([icrypto.KeySize]byte, error) {
	return icrypto.SharedSecret(c.priv, pub)
}
