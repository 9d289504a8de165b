package v1alpha1

// ConditionType is the type of a condition on a Tollgate object.
type ConditionType string

// ConditionReason is the machine-readable reason of a condition.
type ConditionReason string

// Condition types. "Valid" and "live" are kept apart: Accepted and
// ResolvedRefs say the declaration is sound; Ready, Programmed and Enforced
// say it is in effect.
const (
	// ConditionAccepted says whether the object is valid and taken into account.
	//
	// Possible reasons for True: "Accepted".
	// Possible reasons for False: "Invalid", "TargetNotFound", "Conflicted",
	// "NotAllowedByParent", "NoMatchingParent", "UnsupportedValue".
	ConditionAccepted ConditionType = "Accepted"

	// ConditionResolvedRefs says whether every object this one refers to exists
	// and is usable.
	//
	// Possible reasons for True: "ResolvedRefs".
	// Possible reasons for False: "SecretNotFound", "SecretKeyNotFound",
	// "ProviderNotFound", "ModelNotFound".
	ConditionResolvedRefs ConditionType = "ResolvedRefs"

	// ConditionReady says whether the object is usable by traffic right now.
	//
	// Possible reasons for True: "Ready".
	// Possible reasons for False: "NotAccepted", "RefsNotResolved", "Suspended",
	// "KeysPending".
	ConditionReady ConditionType = "Ready"

	// ConditionEnforced says whether a PaymentPolicy is served by a programmed gateway.
	//
	// Possible reasons for True: "Enforced".
	// Possible reasons for False: "NotAccepted", "Pending".
	ConditionEnforced ConditionType = "Enforced"
)

// Condition reasons.
const (
	ReasonAccepted           ConditionReason = "Accepted"
	ReasonInvalid            ConditionReason = "Invalid"
	ReasonTargetNotFound     ConditionReason = "TargetNotFound"
	ReasonConflicted         ConditionReason = "Conflicted"
	ReasonNotAllowedByParent ConditionReason = "NotAllowedByParent"
	ReasonNoMatchingParent   ConditionReason = "NoMatchingParent"
	ReasonUnsupportedValue   ConditionReason = "UnsupportedValue"

	ReasonResolvedRefs      ConditionReason = "ResolvedRefs"
	ReasonSecretNotFound    ConditionReason = "SecretNotFound"
	ReasonSecretKeyNotFound ConditionReason = "SecretKeyNotFound"
	ReasonProviderNotFound  ConditionReason = "ProviderNotFound"
	ReasonModelNotFound     ConditionReason = "ModelNotFound"

	ReasonReady           ConditionReason = "Ready"
	ReasonNotAccepted     ConditionReason = "NotAccepted"
	ReasonRefsNotResolved ConditionReason = "RefsNotResolved"
	ReasonSuspended       ConditionReason = "Suspended"
	ReasonKeysPending     ConditionReason = "KeysPending"

	ReasonEnforced ConditionReason = "Enforced"
	ReasonPending  ConditionReason = "Pending"
)
