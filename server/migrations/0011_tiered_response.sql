-- What an incident needs (care capabilities of its first responder, plus 'transport' when the patient must be
-- carried) is fixed at intake from its call type, so deactivating or editing that call type later does not
-- change what open incidents need. An untriaged call needs basic life support.
ALTER TABLE incidents ADD COLUMN needs text[] NOT NULL DEFAULT '{bls}';
UPDATE incidents i SET needs = t.capabilities FROM triage_types t
 WHERE t.code = i.call_type AND cardinality(t.capabilities) > 0;
-- A demo or registered unit stored without capabilities was never recommended; give it its kind's defaults.
UPDATE units SET capabilities = CASE kind WHEN 'motorbike' THEN '{aed,bls}'::text[] ELSE '{aed,bls,transport}'::text[] END
 WHERE cardinality(capabilities) = 0;
