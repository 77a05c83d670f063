-- What an incident needs (care capabilities of its first responder, plus 'transport' when the patient must be
-- carried) is fixed at intake from its call type, so deactivating or editing that call type later does not
-- change what open incidents need. An untriaged call needs basic life support.
-- Default call types still as first seeded gain 'transport' where the patient goes to hospital (a row an
-- admin has edited is left as it is).
UPDATE triage_types t SET capabilities = t.capabilities || '{transport}'::text[], updated_at = now()
  FROM (VALUES ('cardiac_arrest', '{aed,bls}'::text[]), ('chest_pain', '{aed,bls}'), ('breathing_difficulty', '{bls}'),
               ('unconscious', '{aed,bls}'), ('traffic_accident', '{bls}'), ('major_trauma', '{bls}'),
               ('severe_bleeding', '{bls}'), ('allergic_reaction', '{bls}'), ('drowning', '{aed,bls}'),
               ('newborn_emergency', '{bls}'), ('burns', '{bls}'), ('poisoning', '{bls}'), ('seizure', '{bls}'),
               ('elderly_fall', '{bls}'), ('snake_bite', '{bls}')) AS seeded (code, capabilities)
 WHERE t.code = seeded.code AND t.capabilities @> seeded.capabilities AND t.capabilities <@ seeded.capabilities;
ALTER TABLE incidents ADD COLUMN needs text[] NOT NULL DEFAULT '{bls}';
UPDATE incidents i SET needs = t.capabilities FROM triage_types t
 WHERE t.code = i.call_type AND cardinality(t.capabilities) > 0;
-- A demo or registered unit stored without capabilities was never recommended; give it its kind's defaults.
UPDATE units SET capabilities = CASE kind WHEN 'motorbike' THEN '{aed,bls}'::text[] ELSE '{aed,bls,transport}'::text[] END
 WHERE cardinality(capabilities) = 0;
