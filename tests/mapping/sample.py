"""A hand-written mapping file that uses every feature, shared by the mapping tests."""

from __future__ import annotations

SAMPLE_YAML = """\
format: 1
synapse: dynamics
entities:
  - table: account
    entity: Account
    match_keys: [account_number]
    deletes: {to_udm: true}
    fields:
      - {column: name, field: name, type: string, conflict: reject_empty}
      - {column: accountnumber, field: account_number, type: string, casts: [trim, upper]}
      - {column: emailaddress1, field: email, type: string, casts: [trim, lower], conflict: [udm_wins, reject_empty]}
      - {column: revenue, field: revenue, type: decimal, default: 0}
      - {column: numberofemployees, field: employees, type: string, casts: [string]}
      - {column: creditonhold, field: on_hold, type: boolean}
      - column: accountcategorycode
        field: tier
        type: choice
        unmapped: reject
        options:
          1: GOLD
          2: SILVER
      - {column: statecode, field: state, type: choice, direction: to_udm}
      - {column: statuscode, field: status, type: integer}
      - {column: new_regions, field: regions, type: multichoice}
      - {column: lastonholdtime, field: last_hold_day, type: date, casts: [date_only]}
      - {column: parentaccountid, field: parent_account_ref, type: reference, reference: Account}
      - {column: primarycontactid, field: primary_contact_ref, type: reference, reference: Contact}
      - {column: ownerid, field: owner_ref, type: reference, reference: User, target_table: systemuser, unmapped: null}
      - {column: createdon, field: created_on, type: datetime, direction: to_udm, conflict: {synapse_wins: dynamics}}
      - {field: source_system, type: string, constant: dynamics, direction: to_udm}
      - {column: tickersymbol, constant: DYN, direction: from_udm}
  - table: contact
    entity: Contact
    match_keys: [email]
    fields:
      - {column: firstname, field: first_name, type: string}
      - {column: lastname, field: last_name, type: string}
      - {column: fullname, field: full_name, type: string, direction: to_udm}
      - {column: emailaddress1, field: email, type: string, casts: [trim, lower]}
      - {column: birthdate, field: birth_date, type: date}
      - {column: parentcustomerid, field: account_ref, type: reference, reference: Account, target_table: account}
      - {column: parentcustomerid, field: parent_contact_ref, type: reference, reference: Contact, target_table: contact}
      - {column: ownerid, field: owner_ref, type: reference, reference: User, target_table: systemuser, unmapped: reject}
  - table: systemuser
    entity: User
    match_keys: [domain_name, email]
    fields:
      - {column: fullname, field: full_name, type: string, direction: to_udm}
      - {column: domainname, field: domain_name, type: string, casts: [lower], direction: to_udm}
      - {column: internalemailaddress, field: email, type: string, direction: to_udm}
"""
