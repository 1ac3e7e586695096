-- Each service owns its own database (SPEC §1); run once by the postgres image on an empty volume.
CREATE DATABASE tessera_auth;
CREATE DATABASE tessera_inventory;
