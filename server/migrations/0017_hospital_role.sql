-- A hospital account (the emergency department's desk) is bound to one hospital, as a puskesmas account is to
-- its puskesmas; which kind of facility each role takes is checked where the account is added.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('operator', 'field_team', 'puskesmas', 'specialist', 'hospital', 'admin'));
ALTER TABLE users DROP CONSTRAINT users_check1;
ALTER TABLE users ADD CONSTRAINT users_facility_check CHECK ((role IN ('puskesmas', 'hospital')) = (facility_code IS NOT NULL));
