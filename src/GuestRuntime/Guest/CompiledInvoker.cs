using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;

namespace IsolateGrains.Guest;

/// <summary>
/// Builds, for one method, a delegate that calls it with arguments taken from an object array: the arguments are
/// unboxed or cast to the parameter types and the method is called directly. In the guest's interpreter
/// <see cref="MethodBase.Invoke(object, object[])"/> is several times dearer than such a call. Null where code cannot
/// be emitted or the method's shape is not handled (by-ref, pointer or ref-struct parameters or results, generic
/// definitions, instance methods of value types): callers then use reflection.
/// </summary>
internal static class CompiledInvoker
{
    /// <summary>The invoker of <paramref name="method"/>, or null.</summary>
    public static Func<object?, object?[], object?>? TryCompile(MethodInfo method, ParameterInfo[] parameters)
    {
        if (!RuntimeFeature.IsDynamicCodeSupported || method.ContainsGenericParameters || method.DeclaringType is not { } owner
            || method.CallingConvention.HasFlag(CallingConventions.VarArgs)
            || (!method.IsStatic && owner.IsValueType) || !Handled(method.ReturnType)
            || parameters.Any(p => !Handled(p.ParameterType)))
        {
            return null;
        }
        try
        {
            var invoker = new DynamicMethod("invoke_" + method.Name, typeof(object), [typeof(object), typeof(object[])], owner.Module, skipVisibility: true);
            var il = invoker.GetILGenerator();
            if (!method.IsStatic)
            {
                il.Emit(OpCodes.Ldarg_0);
                il.Emit(OpCodes.Castclass, owner);
            }
            for (var i = 0; i < parameters.Length; i++)
            {
                var type = parameters[i].ParameterType;
                il.Emit(OpCodes.Ldarg_1);
                il.Emit(OpCodes.Ldc_I4, i);
                il.Emit(OpCodes.Ldelem_Ref);
                il.Emit(type.IsValueType ? OpCodes.Unbox_Any : OpCodes.Castclass, type);
            }
            il.Emit(method.IsStatic || !method.IsVirtual ? OpCodes.Call : OpCodes.Callvirt, method);
            if (method.ReturnType == typeof(void))
            {
                il.Emit(OpCodes.Ldnull);
            }
            else if (method.ReturnType.IsValueType)
            {
                il.Emit(OpCodes.Box, method.ReturnType);
            }
            il.Emit(OpCodes.Ret);
            return invoker.CreateDelegate<Func<object?, object?[], object?>>();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever stops the emitter (a type that does not load, say) leaves the call to reflection.
            return null;
        }
    }

    private static bool Handled(Type type) => !type.IsByRef && !type.IsPointer && !type.IsByRefLike && !type.IsFunctionPointer;
}
